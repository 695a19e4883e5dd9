"""The dashboard's static files (HTML, CSS, JS), served by fraudapp.views."""
