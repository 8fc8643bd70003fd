# Trainer: CUDA PyTorch devel image (nvcc for the Mamba kernels) + mamba-ssm/causal-conv1d + PEDES Forge;
# runs the train flow as a Prefect process worker. Multi-node training: torchrun inside this image.
#   docker build -f docker/train.Dockerfile -t pedes-train .
FROM pytorch/pytorch:2.9.1-cuda12.8-cudnn9-devel

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PREFECT_SERVER_ANALYTICS_ENABLED=false \
    TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0" MAX_JOBS=4
WORKDIR /opt/pedes-forge

# The selective-scan / causal-conv1d CUDA kernels build against the image's torch.
RUN pip install packaging ninja \
 && pip install --no-build-isolation "causal-conv1d==1.7.0" "mamba-ssm==2.3.2.post1"

COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY caption_gen caption_gen
COPY training training
COPY eval eval
COPY flows flows
COPY templates templates
COPY configs configs
COPY prefect.yaml prefect.yaml

RUN pip install "prefect==3.8.8" "fastapi==0.154.0" \
 && pip install ".[ray]"

CMD ["prefect", "worker", "start", "--pool", "pedes-train", "--type", "process", "--limit", "1"]
