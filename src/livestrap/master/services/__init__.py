"""The service layer: what the routers call, one module per resource (the rules, the
reads and writes on a Session, and the one mapper from a row to its API schema)."""
