"""Every fix fraudapp makes to faust-streaming's and aiokafka's internals, laid out like the
upstream modules it fixes (README.md here lists each: defect, pinning test, releases).

The worker refuses releases these were not checked against (`versions`, called first
thing by `fraudapp.app`). Nothing in here imports the app, the agents or the views.
"""
