"""What tests share: polling for a condition, servers started for a test, a webhook receiver,
hostile images, a worker that crashes on purpose. Test modules import from here, not from each other."""
