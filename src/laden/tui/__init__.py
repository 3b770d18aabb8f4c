"""The Textual app: a queue, a detail screen per download and the settings.

Only this package imports Textual. It drives the engine through `DownloadManager` and hears
back through the engine's listener API, turned into Textual messages by `bridge.EngineBridge`.
"""
