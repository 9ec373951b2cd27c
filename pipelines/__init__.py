"""Prefect flows and deployments that run the DAG read from dvc.yaml."""
