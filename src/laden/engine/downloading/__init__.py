"""The download direction at the coordinator's seam (see `seam` and `direction`)."""
