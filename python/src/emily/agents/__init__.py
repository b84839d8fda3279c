"""Triune agent loop on LangGraph."""
