"""The ingestion pipeline: feed -> episodes -> audio -> transcript -> takeaways, chapters, guests -> index."""
