"""The words every layer of laden shares: errors, settings, options, states, snapshots, units,
addresses, names, retry policy and checksum names.

Nothing here imports anything else of laden's: the sources and the store build on it, the
engine on them, and the command line, the app and the manifest on the engine.
"""
