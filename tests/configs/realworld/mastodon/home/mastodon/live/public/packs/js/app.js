console.log("packs");
