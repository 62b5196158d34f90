from tests.kubernetes.fixtures import allow_file, api_double, kubeconfig, options

__all__ = ["allow_file", "api_double", "kubeconfig", "options"]
