import uvloop

from services.common import config, grpc_server
from services.faces.app import make_app

if __name__ == "__main__":
    # Every face create is a gRPC call, a dozen PostgreSQL round trips (psycopg waits on the
    # loop's readers) and a JetStream publish: uvloop cuts the event loop's share of each.
    uvloop.install()
    grpc_server.run(make_app(), config.service_address("faces"))
