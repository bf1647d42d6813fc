# Hopper in a container (see docs/deploy.md):
#   docker build -t hopper .
#   docker run -d --init -p 8000:8000 -e HOPPER_TOKEN=change-me -v hopper-data:/srv/hopper/data hopper
# Stop: docker stop's default 10 s suffices (running tasks get shutdown_grace: 5s).

# Stage 1: build the wheel from the sources.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hopper hopper
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: install the wheel; run as an unprivileged user with all data in one volume.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOPPER_BIND=0.0.0.0:8000
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 hopper \
 && useradd --system --uid 10001 --gid hopper --home-dir /srv/hopper --no-create-home hopper \
 && mkdir -p /srv/hopper/data \
 && chown 10001:10001 /srv/hopper /srv/hopper/data
WORKDIR /srv/hopper
COPY --chown=10001:10001 deploy/container-settings.yaml settings.yaml
COPY --chown=10001:10001 run.py run.py
USER 10001:10001
VOLUME ["/srv/hopper/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('HOPPER_BIND', ':8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "run.py"]
