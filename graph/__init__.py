"""alipay-miniapp-graph: a GraphQL service over Alipay's mini-program version API."""

__version__ = "0.1.0"
