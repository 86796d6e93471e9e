"""Local development gateway and dev stack, driven by deploy/kong/kong.yml.

A development tool, never the production gateway (that is Kong).
"""
