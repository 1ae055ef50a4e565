"""The ``watchdog`` command line, one module per command family.

``main`` parses and dispatches; ``serve`` runs the service and ``check`` validates rule
files; ``deploy`` is a client of a running watchdog's API (``gate`` its CI gate);
``replay`` judges history. Nothing is imported here, so a submodule never pulls in the
whole command line (and no import cycle runs through the package).
"""
