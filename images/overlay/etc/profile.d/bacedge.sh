# root's shells on the appliance talk to the local API with the device's token.
if [ -r /etc/bacedge/credentials/api-token ]; then
    BACEDGE_API_KEY=$(cat /etc/bacedge/credentials/api-token)
    export BACEDGE_API_KEY
fi
