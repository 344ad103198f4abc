"""Frontends translate a model into the graph IR. They never compute costs."""
