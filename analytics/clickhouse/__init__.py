"""ClickHouse access: the client module (``client``) and the embedded server (``embedded_server``).

Nothing is imported here: the server process must not pay for numpy/pandas, and the client
must not pay for chDB.
"""
