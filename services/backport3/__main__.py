from services.backport3.app import make_app
from services.common import config, grpc_server

if __name__ == "__main__":
    grpc_server.run(make_app(), config.service_address("backport3"))
