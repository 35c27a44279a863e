import uvloop

from services.common import config, grpc_server
from services.matcher.app import make_app

if __name__ == "__main__":
    # Every match is a gRPC call plus a JetStream request: uvloop cuts the event loop's share
    # of both (as in the gateway; grpc.aio and nats-py run on it).
    uvloop.install()
    grpc_server.run(make_app(), config.service_address("matcher"))
