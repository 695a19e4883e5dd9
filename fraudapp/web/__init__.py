"""HTTP pieces of fraudapp on Faust's web server: auth, body limits, Kafka tap and
publisher, dashboard stream. The routes themselves are in fraudapp/views.py."""
