# Hopper in a container: `docker run -p 8000:8000 -v hopper-data:/srv/hopper/data IMAGE`
FROM python:3.11-slim
WORKDIR /srv/hopper
COPY pyproject.toml README.md ./
COPY app app
COPY worker worker
COPY migrations migrations
COPY run.py settings.yaml ./
RUN pip install --no-cache-dir . \
 && sed -i 's/^  bind: 127.0.0.1:8000/  bind: 0.0.0.0:8000/' settings.yaml
VOLUME ["/srv/hopper/data"]
EXPOSE 8000
# A non-loopback bind needs a token: pass it with -e HOPPER_TOKEN=...
STOPSIGNAL SIGTERM
CMD ["python", "run.py"]
