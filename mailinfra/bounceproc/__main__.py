from mailinfra.bounceproc.service import main

main()
