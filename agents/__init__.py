"""labswarm's researcher agents: the LangGraph loop, proposers, workspaces, the swarm, the CLI."""
