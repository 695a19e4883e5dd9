from fraudapp.cli import main

main()
