"""The sans-I/O protocol core: bytes in, events out; messages in, bytes out.

Nothing in this package touches a socket, a thread or a clock, so every rule of RFC 6455 and
RFC 7692 can be tested byte for byte.
"""
