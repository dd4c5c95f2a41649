"""The Arweave-gateway surface of a local AO network: GraphQL subset, /raw, /tx, uploads."""
from .app import create_gateway_app
from .graphql import GraphQLService

__all__ = ["GraphQLService", "create_gateway_app"]
