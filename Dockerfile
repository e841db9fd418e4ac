# One image for web, worker, beat and flower; docker-compose.yml picks the command.
# Swagger UI's files for /docs come from npm, checked against the hash pinned in the script.
FROM node:20-slim AS swagger-ui
COPY scripts/install-swagger-ui.sh /
RUN /install-swagger-ui.sh /swagger-ui

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends default-libmysqlclient-dev pkg-config gcc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=swagger-ui /swagger-ui vendor/swagger-ui
RUN useradd --create-home app && mkdir -p /data/images /metrics && chown app /data/images /metrics
USER app
ENV KERAS_HOME=/keras IMAGE_STORE_URL=file:///data/images INSTANCE_PATH=/tmp/instance
