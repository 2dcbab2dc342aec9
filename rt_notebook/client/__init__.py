"""Client layer: the Session, its driver and I/O thread, the SDK connection, handles."""
