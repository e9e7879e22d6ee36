"""The bundled demo workload that ``stethoscope demo`` runs."""
