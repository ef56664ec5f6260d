"""Teachers' own data made into datasets: each ingester reads an uploaded file once, streaming,
checks it (every problem named with where it is, within IngestLimits) and writes one compact,
memory-mappable file per dataset version. No Django here: the platform runs these in a Celery
task on the file it received and stores what they write."""
