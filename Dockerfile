# polyroute gateway image: `docker build -t polyroute .` then
#   docker run -p 8000:8000 -v $PWD/gateway.yaml:/etc/polyroute/gateway.yaml:ro \
#     -e NVIDIA_API_KEY=... polyroute
# The image carries a kNN router trained on the bundled data at build time (/opt/polyroute/router),
# so it routes the bundled models out of the box; mount your own router directory over it (or
# point router.path elsewhere) once `polyroute onboard` has trained one for your backends.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    POLYROUTE_CACHE_DIR=/var/cache/polyroute

WORKDIR /src
# The CPU build of torch first, from PyTorch's CPU index: otherwise pip takes the multi-GB CUDA one.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install . && rm -rf /src/src

# Train the default router once, at build time (embeds the bundled prompts offline).
RUN polyroute train --router knn --out /opt/polyroute/router

RUN useradd --system --home /var/lib/polyroute polyroute \
    && mkdir -p /var/lib/polyroute /var/cache/polyroute /etc/polyroute \
    && chown polyroute /var/lib/polyroute /var/cache/polyroute
USER polyroute
WORKDIR /var/lib/polyroute

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["polyroute", "serve", "--config", "/etc/polyroute/gateway.yaml", "--host", "0.0.0.0", "--port", "8000"]
