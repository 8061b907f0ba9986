"""Renderers of results: text, JSON, YAML, GitHub annotations; `reporters` holds the table the CLI picks from."""
