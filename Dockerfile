# syntax=docker/dockerfile:1
# ebbflow: `docker build -t ghcr.io/ebbflow/ebbflow:0.1.0 .` (the chart's default image).

# --- build: a wheel and its dependencies into a virtual environment ---------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/ebbflow
COPY pyproject.toml README.md ./
COPY scaler ./scaler
COPY scalers ./scalers
COPY provisioner ./provisioner
COPY forecasting ./forecasting
COPY kube ./kube
COPY ebbflow ./ebbflow
COPY examples ./examples
RUN /opt/ebbflow/bin/pip install . \
    && find /opt/ebbflow -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/ebbflow/bin/python -m compileall -q /opt/ebbflow/lib

# --- run: the slim base, the environment, a non-root user -----------------------------------
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="ebbflow" \
      org.opencontainers.image.description="Event-driven autoscaler for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 ebbflow \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin ebbflow
COPY --from=build /opt/ebbflow /opt/ebbflow
ENV PATH=/opt/ebbflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# numeric, so runAsNonRoot can verify it without reading /etc/passwd
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["ebbflow"]
CMD ["operator"]
