import uvloop

from services.common import config, grpc_server
from services.matcher.proxy.app import make_app

if __name__ == "__main__":
    uvloop.install()
    grpc_server.run(make_app(), config.service_address("matcher"))
