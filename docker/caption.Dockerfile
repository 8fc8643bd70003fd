# Caption worker: the official vLLM image (CUDA, torch, vLLM) + PEDES Forge; runs the build-corpus,
# style-clusters and mine-templates flows as a Prefect process worker.
#   docker build -f docker/caption.Dockerfile -t pedes-caption .
FROM vllm/vllm-openai:v0.33.0

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
WORKDIR /opt/pedes-forge

COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY caption_gen caption_gen
COPY training training
COPY eval eval
COPY flows flows
COPY templates templates
COPY configs configs
COPY prefect.yaml prefect.yaml

# vLLM (and its torch) come from the base image: install the project and the Ray extra around them.
RUN pip install "prefect==3.8.8" "fastapi==0.154.0" \
 && pip install ".[ray]"

ENTRYPOINT []
CMD ["prefect", "worker", "start", "--pool", "pedes-gpu", "--type", "process", "--limit", "1"]
