"""One screen per module; modals return their result with `dismiss`."""
