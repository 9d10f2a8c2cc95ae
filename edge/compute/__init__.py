"""The compute node: inventory, ledger, bidding and running executions."""
