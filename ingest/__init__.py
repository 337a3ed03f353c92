"""The ingestion pipeline: feed -> transcript -> passages -> embeddings -> understanding -> search indexes."""
