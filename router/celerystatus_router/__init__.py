"""QueueRouter: sends each job to Celery when it is healthy, else to a legacy queue."""
