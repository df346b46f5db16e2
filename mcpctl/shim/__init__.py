"""The per-server process: its loop, one run of the server, the multiplexer, the monitor, its IO.

It imports nothing of `cli`, `render` or `control` (tests/test_layout.py keeps it so).
"""
