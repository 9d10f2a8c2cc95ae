"""Appliance images (images/): first-boot provisioning and the boot health check.

Run on the device as `/opt/bacedge/bin/python3 -m edge.appliance provision|health`, by
the units images/ adds (bacedge-provision.service, bacedge-appliance-health.service).
"""
