"""Text-embedding and semantic-search service: FastAPI over ONNX Runtime (all-MiniLM-L6-v2)."""

__version__ = "1.0.0"
