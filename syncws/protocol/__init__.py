"""The sans-I/O protocol core: bytes in, events out; messages in, bytes out.

Nothing in this package touches a socket, a thread or a clock, so every rule of RFC 6455 and
RFC 7692 can be tested byte for byte. It serves both ends of a connection: the client engine
and the scriptable test server run on the same code, with a role switch for what differs.

- :mod:`.handshake`: the opening handshake (``ClientHandshake``, ``ServerHandshake``).
- :mod:`.connection`: everything after it (``Connection(role)``: frames, fragments, control
  frames, close codes, UTF-8, ``max_message_size``, the extension).
- :mod:`.frames`: the frame parser and builders (valid or deliberately not); :mod:`.mask`:
  masking; :mod:`.deflate`: permessage-deflate negotiation and codec.
"""
