from services.common import config, grpc_server
from services.tasks.app import make_app

if __name__ == "__main__":
    grpc_server.run(make_app(), config.service_address("tasks"))
