"""LangGraph graphs: the coevolution run and task forces."""
