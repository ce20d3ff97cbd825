# TrialGuard Python services (rules service, dashboard, simulator, CLI). Used by docker-compose.yml
# (`build: .`): the package and its dependencies (FastAPI, uvicorn, matplotlib...) are all installed.
#
#   docker build -t trialguard .
#
# durable-rules 2.0.28 builds from source (a C extension) at install time, so the
# image carries a C toolchain; it does not build on Python 3.13, hence the 3.11 base.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Explicit COPY lines (there is no .dockerignore): only what the package build needs,
# never .venv/, .cache/, .git/ or tests/.
COPY pyproject.toml README.md ./
COPY contracts/ ./contracts/
COPY protocol/ ./protocol/
COPY events/ ./events/
COPY services/ ./services/

RUN pip install --no-cache-dir .

RUN groupadd --system --gid 10001 trialguard \
    && useradd --system --uid 10001 --gid trialguard --create-home \
        --home-dir /home/trialguard --shell /usr/sbin/nologin trialguard \
    && install -d -m 700 -o trialguard -g trialguard /var/lib/trialguard /var/lib/trialguard/dashboard
# The dashboard's data (read model, users, session key) lives in /var/lib/trialguard/dashboard: a
# named volume mounted there (docker-compose.yml) starts as a copy of this folder, owned by the
# trialguard user, so the dashboard can write to it.

USER trialguard

ENTRYPOINT ["trialguard"]
CMD ["rules", "serve"]
