"""The upload direction: bytes read from a pinned local file, sent to a service in parts."""
