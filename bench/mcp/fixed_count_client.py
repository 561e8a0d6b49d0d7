# bench/mcp/fixed_count_client.py PORT N BODY TOKEN SESSION [print] — exactly N POST /mcp
# requests over one keep-alive connection (for callgrind_mcp.sh); exits 1 on a non-200.
import http.client, sys, os
port=int(sys.argv[1]); n=int(sys.argv[2]); body=sys.argv[3]; tok=sys.argv[4]; sid=sys.argv[5]
c=http.client.HTTPConnection("127.0.0.1",port)
h={"Content-Type":"application/json","Accept":"application/json, text/event-stream","Authorization":"Bearer "+tok,"Host":"bench.local","MCP-Session-Id":sid,"MCP-Protocol-Version":"2025-11-25"}
last=None
for i in range(n):
    c.request("POST","/mcp",body,h)
    r=c.getresponse(); last=r.read()
    if r.status!=200: print("status",r.status,last); sys.exit(1)
if len(sys.argv)>6: print(last.decode())
