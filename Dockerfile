FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install -e .
COPY . .
RUN useradd --create-home journey && mkdir -p /var/lib/journey && chown journey /var/lib/journey
USER journey
EXPOSE 8000
