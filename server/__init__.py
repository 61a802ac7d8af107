"""labswarm's HTTP API and dashboard over a memory store.

``labswarm serve`` runs it; ``server.app.create_app(store)`` builds it.
"""

__version__ = "0.1.0"
